"""Camera images to model tensors and outputs back to images: decode, preprocess, encode."""
