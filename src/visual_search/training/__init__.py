"""Training: LightningModule, losses, heads, callbacks."""
