#!/usr/bin/env bash
# Regenerate README's selection-replay table from nothing: build the full zoo for each zoo seed,
# benchmark it under each training seed, then replay selection over every (zoo seed, training seed).
#
#   benchmarks/reproduce.sh OUT                                   # zoo seed 0, training seeds 0 1 2
#   ZOO_SEEDS="0 1 2 3 4" TRAINING_SEEDS="0 1 2" benchmarks/reproduce.sh OUT
#
# Everything lands in OUT, caches included (XDG_CACHE_HOME and HF_HOME point inside it), so a run
# never reads a dataset cached by an earlier build. Rerunning with the same OUT resumes: a built zoo
# is kept and benchmarked pairs are skipped. OUT/replay.txt is the table, OUT/replay.json every
# number with the command, package versions, CPU, threads, seeds and protocol; OUT/timings.txt says
# how long each step took. The protocol is README's: 5 epochs, learning rate 2e-3, 32 tokens.
set -euo pipefail

out=${1:?usage: benchmarks/reproduce.sh OUT   (env: ZOO_SEEDS, default "0"; TRAINING_SEEDS, default "0 1 2")}
zoo_seeds=${ZOO_SEEDS:-0}
training_seeds=${TRAINING_SEEDS:-0 1 2}
here=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$out"
out=$(cd "$out" && pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export XDG_CACHE_HOME="$out/cache" HF_HOME="$out/cache/huggingface"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

step() {  # step NAME COMMAND...: run and append its wall time to OUT/timings.txt
    local name=$1 started=$SECONDS
    shift
    "$@"
    echo "$name $((SECONDS - started)) s" >>"$out/timings.txt"
}

repositories=()
zoos=()
for zoo_seed in $zoo_seeds; do
    zoo="$out/zoo-full-seed$zoo_seed"
    repository="$out/zoo-full-seed$zoo_seed.sqlite"
    if [ ! -f "$zoo/zoo.json" ]; then
        step "zoo-build seed=$zoo_seed" hfselect zoo build "$zoo" --size full --seed "$zoo_seed" --quiet
    fi
    for training_seed in $training_seeds; do
        step "bench zoo_seed=$zoo_seed training_seed=$training_seed" \
            hfselect bench --models "$zoo/models" --datasets "$zoo/datasets" --epochs 5 \
            --learning-rate 2e-3 --max-length 32 --seed "$training_seed" --repository "$repository" --quiet
    done
    repositories+=("$repository")
    zoos+=("$zoo")
done

step "replay" python "$here/selection_replay.py" --repository "${repositories[@]}" --zoo "${zoos[@]}" \
    --seeds "${training_seeds// /,}" --json "$out/replay.json" >"$out/replay.txt"
cat "$out/replay.txt"
