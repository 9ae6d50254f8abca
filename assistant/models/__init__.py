"""Model packs: catalog, pull, references."""
