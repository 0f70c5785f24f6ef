"""``fusionbrain info``: parameter counts and sharing of a model (N, M, M/N, per task)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="DIR",
                        help="a saved model folder (save_pretrained) or a shipped model's "
                             "name; default: build --config")
    parser.add_argument("--config", metavar="NAME_OR_JSON", default=None,
                        help="preset name (default, cpu-small, tiny), JSON file or JSON string "
                             "(default: 'default')")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")


def _fmt(n: int) -> str:
    return f"{n:,}"


def run(args: argparse.Namespace) -> int:
    from fusionbrain.errors import UserError
    from fusionbrain.model.configuration import resolve_config

    if args.model and args.config:
        raise UserError("give --model or --config, not both")
    if args.model:
        from fusionbrain.model.modeling_fusionbrain import FusionBrain

        model = FusionBrain.from_pretrained(args.model)
    else:
        config = resolve_config(args.config)  # config errors before the slow imports
        from fusionbrain.model.modeling_fusionbrain import FusionBrain

        model = FusionBrain(config)
    info = model.parameter_counts()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    print(f"body source:           {info['body_source']} ({info['body_layers']} blocks, "
          f"width {info['hidden_size']}, preset {info['preset']})")
    print(f"total parameters N:    {_fmt(info['total_parameters'])}")
    print(f"shared by all tasks M: {_fmt(info['shared_parameters'])} "
          f"({', '.join(info['shared_groups'])})")
    print(f"M/N:                   {info['shared_fraction']:.4f}"
          f"  ({'meets' if info['shared_fraction'] >= 0.3 else 'FAILS'} the M/N >= 0.3 rule)")
    print(f"frozen parameters:     {_fmt(info['frozen_parameters'])}"
          f"  (body frozen: {'yes' if info['body_frozen'] else 'NO'})")
    print(f"trainable parameters:  {_fmt(info['trainable_parameters'])}"
          f"  (LoRA {_fmt(info['lora_parameters'])})")
    print(f"vision encoder:        {_fmt(info['vision_parameters'])} "
          f"({' + '.join(info['vision_tasks']) or 'no task'})")
    print("trainable per task:")
    for task, n in info["trainable_per_task"].items():
        print(f"  {task:<5} {_fmt(n):>12}  (head {_fmt(info['head_parameters'][task])})")
    return 0
