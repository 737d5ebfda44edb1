"""Bridges to other libraries' registries and tools (import the submodule you need: ``lucid.integrations.timm``)."""
