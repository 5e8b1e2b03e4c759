#!/bin/bash
# slt against the Python reference, back to back: interleaved rounds of the
# reference's benchmark (../shared/perf) and slt's, then each round's ratio
# and their median. This machine's speed moves within minutes, so one round
# says little; the median over many does.
#   bench/against_reference.sh ORACLE_DIR WHAT [ROUNDS=8] [OUT=/tmp/slt-vs-reference]
# ORACLE_DIR: the reference environment made by ../shared/perf/setup.sh.
# WHAT: train-t5 | train-tarres (slt / reference step time, medians of 5 steps)
#       beam-t5-1 | beam-t5-16 | beam-tarres-16 (reference / slt time: the speed-up)
# Needs a build in build/ (bench_train_step, bench_beam_search).
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,10p "$0"; exit 2; }
[ -d "$1/site" ] && [ -d "$1/tarres" ] ||
  { echo "$1 is not a reference environment: make one with ../shared/perf/setup.sh" >&2; exit 2; }
oracle=$(cd "$1" && pwd); what=$2; rounds=${3:-8}; out=${4:-${TMPDIR:-/tmp}/slt-vs-reference}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive whole number, not '$rounds'" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
perf=${SLT_PERF_DIR:-$repo/../shared/perf}
bin=$repo/build/bin
[ -f "$perf/bench_common.py" ] || { echo "no reference scripts in $perf (set SLT_PERF_DIR)" >&2; exit 2; }
[ -x "$bin/bench_train_step" ] || { echo "build slt first: $bin/bench_train_step is missing" >&2; exit 2; }
python=/usr/bin/python3  # Debian's, with python3-torch: the same LibTorch and OpenBLAS as slt
t5_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "PYTHONPATH=$perf:$oracle/site:$oracle/models")
tarres_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "ORACLE=$oracle"
  "PYTHONPATH=$perf:$oracle/tarres/work:$oracle/tarres/shims:$oracle/src/ssvp_slt/src:$oracle/src/ssvp_slt/fairseq-sl")
case $what in
  train-t5) ref=("${t5_env[@]}" BENCH_STEPS=5 "$python" bench_signt5.py train); ours=("$bin/bench_train_step" --steps 5 --only t5-small) ;;
  train-tarres) ref=("${tarres_env[@]}" BENCH_STEPS=5 "$python" bench_tarres.py train); ours=("$bin/bench_train_step" --steps 5 --only tarres) ;;
  beam-t5-1) ref=("${t5_env[@]}" BENCH_REPS=2 "$python" bench_signt5.py generate 1); ours=("$bin/bench_beam_search" --source-length 256 --repeats 2 --only t5 --batch 1) ;;
  beam-t5-16) ref=("${t5_env[@]}" BENCH_REPS=1 "$python" bench_signt5.py generate 16); ours=("$bin/bench_beam_search" --source-length 256 --repeats 1 --only t5 --batch 16) ;;
  beam-tarres-16) ref=("${tarres_env[@]}" BENCH_REPS=2 "$python" bench_tarres.py generate 16); ours=("$bin/bench_beam_search" --source-length 256 --repeats 2 --only tarres) ;;
  *) echo "WHAT must be train-t5, train-tarres, beam-t5-1, beam-t5-16 or beam-tarres-16, not '$what'" >&2; exit 2 ;;
esac
mkdir -p "$out"; out=$(cd "$out" && pwd)
for round in $(seq 1 "$rounds"); do
  mkdir -p "$out/r$round"
  rm -f "$out/r$round"/*.json "$out/r$round"/*.log  # an earlier run's results would be read as this one's
  (cd "$perf" && PERF_OUT="$out/r$round" "${ref[@]}" >"$out/r$round/reference.log" 2>&1) ||
    { echo "round $round: the reference failed, see $out/r$round/reference.log" >&2; exit 1; }
  "${ours[@]}" >"$out/r$round/slt.log" 2>&1 || { echo "round $round: slt failed, see $out/r$round/slt.log" >&2; exit 1; }
  echo "round $round of $rounds done" >&2
done
"$python" - "$out" "$what" "$rounds" <<'PY'
import glob, json, statistics, sys
out, what, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
train = what.startswith("train")
ratios = []
for r in range(1, rounds + 1):
    folder = f"{out}/r{r}"
    result = json.load(open(glob.glob(folder + "/*.json")[0]))
    result = result.get("result", result)
    ref = result["total"]["median"] if train else result["seconds_per_batch"]["median"]
    lines = [json.loads(l) for l in open(folder + "/slt.log") if l.startswith("{")]
    ours = next(l["seconds"] for l in lines if l.get("full_length", True))
    ratio = ours / ref if train else ref / ours
    ratios.append(ratio)
    print(f"round {r}: reference {ref:.3f} s, slt {ours:.3f} s, {'slt/reference time' if train else 'speed-up'} {ratio:.3f}")
print(f"{what}: median {statistics.median(ratios):.3f}, mean {statistics.mean(ratios):.3f}, "
      f"range {min(ratios):.3f}-{max(ratios):.3f} over {rounds} rounds")
PY
