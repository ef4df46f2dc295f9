"""The stages of a self-play round, one module each, in the order a puzzle passes through them:

    seeding     round 0: seed puzzles' reference solutions, judged, as the first verified pairs
    proposing   the model writes puzzles (or programs with inputs) from few-shot prompts: proposals.jsonl
    filtering   proposals become puzzles in the corpus, or are dropped with a reason (filter.json)
    solving     the solver's attempts at the round's puzzles, each judged by the sandbox
    relabeling  wrong answers to target-form puzzles become verified pairs of relabeled puzzles
    selecting   the round's training rows, from every verified pair (train.jsonl)
    training    the model fine-tuned on them (checkpoint/)
    evaluating  the trained model's held-out pass@k (eval/)

Each stage is `run(context, round_) -> <Stage>Result`; `puzzleloop.rounds` runs them in order and stores each
result in the stage's done-marker. `context` holds what they share: settings, folder, corpus, judges and model.
"""
