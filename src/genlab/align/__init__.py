"""Fine-tuning, LoRA, the feedback store, reward models and DPO."""
