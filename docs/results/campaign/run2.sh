#!/bin/bash
# Campaign, part 2 (after model.init=auto and reverse_answer): one study after another, resumable.
cd /work/main; source .venv/bin/activate
tune() { # task layout space trial_s extra-set
  toyformer tune $1 --layout $2 --space runs/campaign/$3 --budget-s 2400 --trials 24 --trial-s $4 --threads 1 \
    --seeds 3 --set eval.target=0.999 $5 --out runs/campaign/v2-$1-$2 --quiet >> runs/campaign/v2-$1-$2.log 2>&1
  echo "$(date +%H:%M) done $1 $2 rc=$?" >> runs/campaign/progress.log
}
tune addition causal add2.yaml 45 "--set task.reverse_answer=true"
tune addition seq2seq add2.yaml 45 "--set task.reverse_answer=true"
tune modular_arithmetic seq2seq seq.yaml 45
tune sort causal seq.yaml 120
tune sort seq2seq seq.yaml 120
tune sort tagger seq.yaml 120
