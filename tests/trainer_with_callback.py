"""A user's ordinary Trainer script with the one line that adds hfselect's callback.

Used by tests/test_callback.py, which runs it in separate processes sharing one study:
``python tests/trainer_with_callback.py MODEL DATASET REPOSITORY STUDY LR EPOCHS OUT.json [KEY=VALUE ...]``
with ``strategy=steps`` (evaluate every 10 steps) and ``margin=0`` (the callback's margin). The
callback is given no metric: it follows ``metric_for_best_model``, as ``EarlyStoppingCallback`` does.
It runs under ``torchrun --nproc_per_node 2`` too (gloo on CPU): each process then writes its own
``OUT.json.rankN`` beside ``OUT.json``.
"""

from __future__ import annotations

import json
import sys
import tempfile

import datasets
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from hfselect import ConvergenceTrendCallback


def main() -> None:
    model_path, dataset_path, repository, study, learning_rate, epochs, out = sys.argv[1:8]
    options = dict(argument.split("=", 1) for argument in sys.argv[8:])
    strategy = options.get("strategy", "epoch")
    margin = options.get("margin", "auto")
    data = datasets.load_dataset(dataset_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    data = data.map(lambda batch: tokenizer(batch["text"], truncation=True, max_length=32), batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    with tempfile.TemporaryDirectory() as scratch:
        arguments = TrainingArguments(
            output_dir=scratch,
            num_train_epochs=int(epochs),
            learning_rate=float(learning_rate),
            per_device_train_batch_size=16,
            eval_strategy=strategy,
            eval_steps=10,
            save_strategy="no",
            report_to=[],
            seed=0,
            disable_tqdm=True,
            metric_for_best_model="accuracy",  # what the callback follows: eval_accuracy, higher is better
            use_cpu=not torch.cuda.is_available(),  # under torchrun on CPU: DDP over gloo
        )
        callback = ConvergenceTrendCallback(
            study=study, repository=repository, margin=margin if margin == "auto" else float(margin)
        )
        trainer = Trainer(
            model=model,
            args=arguments,
            train_dataset=data["train"],
            eval_dataset=data["validation"],
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
            callbacks=[callback],  # the one line hfselect adds
        )
        trainer.train()
    # Under torchrun every process writes its own file (OUT.rankN): the test checks they stopped together.
    rank = trainer.args.process_index
    with open(out if rank == 0 else f"{out}.rank{rank}", "w") as file:
        json.dump(
            {
                "epochs": trainer.state.epoch,
                "log_history": trainer.state.log_history,
                "stopped_reason": callback.stopped_reason,
                "overhead_s": callback.overhead_s,
                "metric": callback.metric,
                "greater_is_better": callback.greater_is_better,
                "rule": callback.rule,
                "rule_message": callback.rule_message,
                "run_name": callback.model_id,
                "processes": trainer.args.world_size,
            },
            file,
        )


if __name__ == "__main__":
    main()
