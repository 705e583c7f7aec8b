#!/bin/bash
# The tune campaign of issue 30: each pair that misses its target, one study after another (resumable:
# run again after a kill). Trials are capped at 60 s (arithmetic 150 s) and judged on 3 seeds.
cd /work/main; source .venv/bin/activate
tune() { # task layout space trial_s
  toyformer tune $1 --layout $2 --space runs/campaign/$3 --budget-s 2400 --trials 24 --trial-s $4 --threads 1 \
    --seeds 3 --set eval.target=0.999 --out runs/campaign/$1-$2 --quiet >> runs/campaign/$1-$2.log 2>&1
  echo "$(date +%H:%M) done $1 $2 rc=$?" >> runs/campaign/progress.log
}
tune sort tagger seq.yaml 60
tune lookup_table seq2seq seq.yaml 60
tune modular_arithmetic seq2seq seq.yaml 60
tune addition causal add.yaml 60
tune addition seq2seq add.yaml 60
tune copy seq2seq seq.yaml 60
tune reverse seq2seq seq.yaml 60
tune sort causal seq.yaml 60
tune sort seq2seq seq.yaml 60
