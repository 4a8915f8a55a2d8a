"""The model files: registry, download and cache, GGUF header, conversion."""
