#!/usr/bin/python3
"""Writes tests/golden/metric_corner_cases.json: the corner cases of the
translation metrics, scored by the libraries the reference evaluates with.

Run by hand when the cases change (not by the test suite: sacrebleu and
rouge_score are not Debian packages):

    NLTK_DATA=DIR /usr/bin/python3 tests/python/make_metric_corner_cases.py \
        --sacrebleu-src SRC --rouge-src SRC > tests/golden/metric_corner_cases.json

SRC folders hold the `sacrebleu` (v2.6.0) and `rouge_score` packages' source;
NLTK is Debian's python3-nltk 3.8; DIR/corpora/wordnet holds WordNet 3.0
(Debian's wordnet-base plus a `lexnames` file). Each value is computed as
ssvp_slt computes it (see ../shared/fixtures/metrics/README.md): BLEU-1..4
from corpus statistics with exp smoothing, rounded to 2 decimals; corpus
chrF; mean ROUGE F-measures; mean METEOR. METEOR tokenizes as NLTK's
word_tokenize does (Punkt sentences, then NLTKWordTokenizer), with an
untrained PunktSentenceTokenizer instead of nltk_data's English model, which
is not available offline: the two split alike unless a text has
abbreviations or initials, which these cases avoid. (Checked on the shared
fixtures: the untrained splitter reproduces every METEOR value there but the
one pair built around an abbreviation.)
"""
import argparse
import json
import sys


def cases():
    long_hyp = " ".join(f"word{(i * 7) % 211}" for i in range(3000)) + "."
    long_ref = " ".join(f"word{(i * 5) % 223}" for i in range(3200)) + "."
    return [
        ("no_shared_unigram", ["red green blue", "one two"], ["cat dog", "fish bird tree"]),
        ("empty_hypotheses", ["", ""], ["hello world", "good morning everyone"]),
        ("empty_references", ["hello world", "good morning"], ["", ""]),
        ("all_empty", [""], [""]),
        ("single_token_match", ["hello"], ["hello"]),
        ("single_token_mismatch", ["hello"], ["world"]),
        ("only_unigrams_match", ["dog the cat a"], ["a cat the dog"]),
        ("typographic_quotes", ["He said “stop.” and left.", "She asked: «Where is it?»", "„Ja“, sagte er."],
         ['He said "stop." and left.', 'She asked: "Where is it?"', '"Yes," he said.']),
        ("single_quotes_and_clitics", ["It’s ‘quoted’ here.", "'Tis the season, d'ye know.", "You can't, won't."],
         ["It's 'quoted' here.", "It is the season, do you know.", "You cannot, will not."]),
        ("closing_quote_after_period", ["“Stop.”", "He said ‘go.’"], ['"Stop."', "He said 'go.'"]),
        ("non_ascii_punctuation", ["Wait… what？", "你好，世界。", "Price: €5 — cheap!"],
         ["Wait... what?", "你好, 世界.", "Price: 5 euros - cheap!"]),
        ("brackets_dashes_symbols", ["(a) [b] {c} <d> -- e; f@g #h $5 50% & *", "gonna wanna gimme lemme"],
         ["(a) [b] {c} <d> - e; f@g #h $5 50% and *", "going to want to give me let me"]),
        ("long_line", [long_hyp], [long_ref]),
        ("multi_line_rougeLsum", ["the cat sat\non the mat", "d e\na b c", "one line only", "x y\n\nz"],
         ["the cat\nsat on the mat today", "a b c\nd e", "one line\nonly", "z\nx y"]),
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sacrebleu-src", required=True)
    parser.add_argument("--rouge-src", required=True)
    args = parser.parse_args()
    sys.path.insert(0, args.sacrebleu_src)
    sys.path.insert(0, args.rouge_src)
    import nltk
    import sacrebleu
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer
    from nltk.translate.meteor_score import single_meteor_score
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    sentences, words = PunktSentenceTokenizer(), NLTKWordTokenizer()

    def word_tokenize(text):
        return [token for sentence in sentences.tokenize(text) for token in words.tokenize(sentence)]

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=False)
    out = {
        "provenance": f"tests/python/make_metric_corner_cases.py: sacrebleu {sacrebleu.__version__}, "
                      f"rouge_score (google-research source), nltk {nltk.__version__} with WordNet 3.0",
        "cases": [],
    }
    for name, hyps, refs in cases():
        bleu = sacrebleu.corpus_bleu(hyps, [refs])
        expected = {}
        for n in range(1, 5):
            score = BLEU.compute_bleu(correct=bleu.counts[:n], total=bleu.totals[:n], sys_len=bleu.sys_len,
                                      ref_len=bleu.ref_len, smooth_method="exp", max_ngram_order=n).score
            expected[f"bleu{n}"] = round(score, 2)
        expected["chrf"] = CHRF().corpus_score(hyps, [refs]).score
        rouge = [scorer.score(r, h) for h, r in zip(hyps, refs)]
        for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            expected[key] = sum(s[key].fmeasure for s in rouge) / len(rouge)
        meteor = [single_meteor_score(word_tokenize(r), word_tokenize(h))
                  for h, r in zip(hyps, refs)]
        expected["meteor"] = sum(meteor) / len(meteor)
        if sum(map(len, hyps + refs)) < 2000:  # the tokens, to tell a tokenizer difference from a matcher one
            expected["meteor_tokens"] = [word_tokenize(t) for t in hyps + refs]
        out["cases"].append({"name": name, "hypotheses": hyps, "references": refs, "expected": expected})
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
