"""What the node may use and does use: memory budgets, measured memory, thermal state."""
