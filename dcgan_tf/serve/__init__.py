"""Trained models in use: the one loader, SavedModel export and its checks, and making faces."""
