"""servebench: the harness of the study "Rust vs Python: an ML web service
using ONNX Runtime and Transformers"."""
