"""`fastmlp export`: a saved model as ONNX, safetensors or a PyTorch state_dict."""
from . import add_command
from .options import distinct_files, existing_file, output_path


def add_parser(subparsers):
    parser = add_command(subparsers, "export", description="Write a model saved by fastmlp "
                         "train --save in a format other tools load, chosen by OUT's suffix: "
                         ".onnx (an ONNX graph of Gemm, Relu and Softmax, outputs logits and "
                         "probabilities; needs the onnx package: pip install 'fastmlp[export]'), "
                         ".safetensors (the state_dict of torch.nn.Sequential(Linear, ReLU, "
                         "..., Linear), no dependency) or .pt (the same, by torch.save). A "
                         "model trained with --standardize takes raw features in every format. "
                         "The class names are in the file's metadata.")
    parser.add_argument("model", type=existing_file, metavar="MODEL.npz")
    parser.add_argument("out", type=output_path, metavar="OUT",
                        help="OUT.onnx, OUT.safetensors or OUT.pt (written atomically)")
    return parser


def run(args):
    from ..export import export
    from ..training import checkpoint

    distinct_files([("OUT", args.out)], [("MODEL.npz", args.model)])
    saved = checkpoint.load(args.model)
    export(saved.model, saved.classes, args.out, saved.scaler)
    print(args.out)
