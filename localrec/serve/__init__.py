"""`localrec serve`: a local HTTP API over one `Recommender`, and a playground page.

FastAPI and uvicorn are the optional extra `localrec[serve]`; nothing here imports them
until a server is made (`server.Server`), so the CLI starts without them.
"""
