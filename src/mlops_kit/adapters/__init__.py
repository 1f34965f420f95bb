"""Cloud adapters: implementations of the runtime ports and the registry for each cloud."""
