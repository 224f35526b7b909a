#!/usr/bin/env bash
# One prepared run on a lent GPU machine (no network there): install the wheels carried in
# .whl/, check the CUDA path by training every config on the GPU (falling back to the CPU if
# the GPU path fails), evaluate on the test sets, measure words/s on the GPU, and pack the
# results into $OUT. Usage on the device: OUT=... bash scripts/gpu_run.sh TRAIN_SECONDS
set -u
TRAIN_SECONDS=${1:-330}
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT/metrics" "$OUT/logs" /tmp/train
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2
start=$(date +%s)
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . || exit 1
export PYTHONPATH=/tmp/site
nvidia-smi -L > "$OUT/logs/machine.txt" 2>&1
python3 -c "import spacy, thinc, torch, cupy; print('spacy', spacy.__version__, 'thinc', thinc.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cupy', cupy.__version__)" >> "$OUT/logs/machine.txt" 2>&1
cat "$OUT/logs/machine.txt"
echo "installed after $(( $(date +%s) - start )) s"

# name|config|extra overrides
JOBS=(
  "scierc|configs/scierc.cfg|"
  "conll04|configs/conll04.cfg|"
  "litbank|configs/litbank.cfg|"
  "mixed|configs/mixed.cfg|"
  "abl_ner|configs/scierc.cfg|--nlp.pipeline [\"hmtl_encoder\",\"hmtl_ner\"]"
  "abl_mentions|configs/scierc.cfg|--nlp.pipeline [\"hmtl_encoder\",\"hmtl_mentions\"]"
  "abl_relations|configs/scierc.cfg|--nlp.pipeline [\"hmtl_encoder\",\"hmtl_relations\"]"
  "abl_coref|configs/scierc.cfg|--nlp.pipeline [\"hmtl_encoder\",\"hmtl_coref\"]"
)

launch() {  # $1 = gpu id, $2 = seconds
    set -f  # the pipeline overrides hold [...]: no globbing
    for job in "${JOBS[@]}"; do
        IFS='|' read -r name cfg extra <<< "$job"
        # shellcheck disable=SC2086
        timeout "$2" python3 -m spacy train "$cfg" --output "/tmp/train/$name" --gpu-id "$1" \
            --training.max_steps 100000 --training.eval_frequency 100 $extra \
            > "$OUT/logs/train_$name.log" 2>&1 &
    done
    set +f
}

GPU=0
launch 0 "$TRAIN_SECONDS"
sleep 75
if grep -q "Traceback" "$OUT/logs/train_scierc.log"; then
    echo "GPU training failed; falling back to the CPU:"; tail -25 "$OUT/logs/train_scierc.log"
    pkill -f "spacy train"; sleep 2
    mkdir -p "$OUT/logs/gpu_failed"; mv "$OUT"/logs/train_*.log "$OUT/logs/gpu_failed/"
    GPU=-1
    launch -1 $(( TRAIN_SECONDS - 80 ))
fi
wait
echo "trained after $(( $(date +%s) - start )) s (gpu=$GPU)"
for name in scierc conll04 litbank; do
    python3 -m spacy evaluate "/tmp/train/$name/model-best" "corpus/$name/test.spacy" --gpu-id $GPU \
        --output "$OUT/metrics/${name}_test.json" > "$OUT/logs/eval_$name.log" 2>&1 &
done
for name in abl_ner abl_mentions abl_relations abl_coref; do
    python3 -m spacy evaluate "/tmp/train/$name/model-best" corpus/scierc/test.spacy --gpu-id $GPU \
        --output "$OUT/metrics/${name}_test.json" > "$OUT/logs/eval_$name.log" 2>&1 &
done
python3 -m spacy evaluate /tmp/train/mixed/model-best corpus/conll04/test.spacy --gpu-id $GPU \
    --output "$OUT/metrics/mixed_conll04_test.json" > "$OUT/logs/eval_mixed_conll04.log" 2>&1 &
python3 -m spacy evaluate /tmp/train/mixed/model-best corpus/litbank/test.spacy --gpu-id $GPU \
    --output "$OUT/metrics/mixed_litbank_test.json" > "$OUT/logs/eval_mixed_litbank.log" 2>&1 &
wait
echo "evaluated after $(( $(date +%s) - start )) s"
# words/s of the trained SciERC pipeline on the GPU (and on this machine's CPU for reference)
python3 - "$GPU" > "$OUT/metrics/gpu_speed.json" 2> "$OUT/logs/speed.log" <<'PY'
import json, sys, time
import spacy
from spacy.tokens import DocBin
gpu = int(sys.argv[1])
result = {}
for device in (["gpu"] if gpu >= 0 else []) + ["cpu"]:
    if device == "gpu":
        spacy.require_gpu(0)
    else:
        spacy.require_cpu()
    nlp = spacy.load("/tmp/train/scierc/model-best")
    for corpus in ("scierc", "litbank"):
        texts = [d.text for d in DocBin().from_disk(f"corpus/{corpus}/test.spacy").get_docs(nlp.vocab)]
        list(nlp.pipe(texts[:8]))
        t = time.time(); n = sum(len(d) for d in nlp.pipe(texts, batch_size=32)); dt = time.time() - t
        result[f"{device}_{corpus}"] = {"words": n, "seconds": dt, "words_per_second": n / dt}
print(json.dumps(result, indent=2))
PY
cat "$OUT/metrics/gpu_speed.json"
for name in scierc conll04 litbank mixed; do
    grep -E "^\s+[0-9]+\s+[0-9]+" "$OUT/logs/train_$name.log" | tail -3
done
tar -czf "$OUT/models_scierc_conll04.tgz" -C /tmp/train scierc/model-best conll04/model-best 2>/dev/null
tar -czf "$OUT/models_litbank_mixed.tgz" -C /tmp/train litbank/model-best mixed/model-best 2>/dev/null
tar -czf "$OUT/results.tgz" -C "$OUT" metrics logs
ls -la "$OUT"
echo "done after $(( $(date +%s) - start )) s"
