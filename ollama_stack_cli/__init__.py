"""ollama-stack: run Ollama, Open WebUI and an MCP proxy on Docker with one command."""

__version__ = "0.1.0"
