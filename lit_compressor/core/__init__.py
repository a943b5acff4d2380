"""The light core: errors, console tables, YAML configs, atomic files, fingerprints and model-folder metadata.

Nothing here imports torch, transformers or Lightning, and nothing here imports another layer of the package.
"""
