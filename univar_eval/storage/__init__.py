"""What is kept on disk: safe files, identities, schemas, value distributions, banks, the hub.

Where each step lives and the layer order: docs/architecture.md."""
