"""The learned sepsis model: model cards, the verified registry, the ONNX scorer and training."""
