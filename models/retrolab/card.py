"""Writes MODEL_CARD.md for each shipped model from its manifest (metrics included, as measured
by `npm run eval` on the shipped files).

usage: python3 -m retrolab.card --public public/models
"""
from __future__ import annotations

import argparse
import json
import os

METRIC_LABELS = {
    'wt2_valid': 'WikiText-2 valid',
    'wt2_test': 'WikiText-2 test',
    'wt2_test_random_neighbours': 'WikiText-2 test, random neighbours',
    'wt2_test_leakage': 'WikiText-2 test, test articles in the datastore (leakage)',
    'wt2_test_knnlm': 'WikiText-2 test, kNN-LM',
    'wt2_test_adaptive_knnlm': 'WikiText-2 test, adaptive kNN-LM',
    'wt2_test_retomaton': 'WikiText-2 test, RetoMaton (kNN-LM with pointers)',
    'wt2_test_icralm': 'WikiText-2 test, In-Context RALM',
    'wt2_test_replug': 'WikiText-2 test, REPLUG (k = 4)',
    'wt2_test_rag_sequence': 'WikiText-2 test, RAG-Sequence (k = 4)',
    'wt2_test_flare': 'WikiText-2 test, FLARE',
}


def _change(ours: float, reference: float) -> str:
    change = abs(ours / reference - 1)
    return f"{change:.{2 if change < 0.01 else 1}%} {'lower' if ours < reference else 'higher'}"


def _against_gpt(metric: dict, gpt: float | None) -> str:
    """The change against the GPT on the same targets, measured in the same run (same backend) where it was."""
    reference = metric.get('gpt_token_ppl', gpt)
    if reference is None:
        return ''
    notes = ['both on onnxruntime-node'] if 'onnxruntime-node' in metric.get('measured_by', '') else []
    paired = metric.get('paired_vs_gpt')
    if paired:
        low, high = paired['ci_percent']
        notes.append(f"95% interval {low:+.2f}% to {high:+.2f}%, {paired['articles']} articles resampled by npm run eval:paired")
    return f": {_change(metric['token_ppl'], reference)} token-level perplexity than the GPT alone" + (f" ({'; '.join(notes)})" if notes else '')


def family_paragraphs(metrics: dict) -> list[str]:
    """One paragraph per retrieval method after kNN-LM and In-Context RALM, from what its eval stored."""
    out: list[str] = []
    gpt = metrics.get('wt2_test', {}).get('token_ppl')
    a = metrics.get('wt2_test_adaptive_knnlm')
    # The plain kNN-LM on the same IVF search: the adaptive run's own sweep holds it.
    plain_ivf = next((s['token_ppl'] for s in (a or {}).get('sweep', []) if s.get('lambda') == a.get('lambda')), None) if a else None
    if a:
        out += [f"Adaptive kNN-LM (He et al. 2021; Drozdov et al. 2022; docs/adaptive-knnlm.md): the same kNN-LM with λ from a "
                f"table of the nearest neighbour's distance (tuned on valid), and no search where the GPT's top probability is "
                f"≥ {a['skip_above']}: {a['adaptive']['fraction_saved']:.1%} of searches skipped"
                + (f", {_change(a['token_ppl'], plain_ivf)} perplexity than the plain kNN-LM on the same IVF search ({fmt(plain_ivf)})"
                   if plain_ivf else '') + '.', '']
    r = metrics.get('wt2_test_retomaton')
    if r:
        out += [f"RetoMaton (Alon et al. 2022; docs/retomaton.md): the same kNN-LM following each neighbour's pointer to the "
                f"next datastore entry while the text matches, searching only when fewer than {r['retomaton']['min_pointers']} "
                f"pointers survive: {r['retomaton']['fraction_skipped']:.1%} of searches skipped"
                + (f" for {_change(r['token_ppl'], plain_ivf)} perplexity than the plain kNN-LM on the IVF search" if plain_ivf else '')
                + '.', '']
    rp = metrics.get('wt2_test_replug')
    if rp:
        out += [f"REPLUG (Shi et al. 2023; docs/replug.md): this GPT unchanged, run once per top-{rp['k']} passage (each "
                f"before the context, as In-Context RALM), the next-token distributions mixed with weights softmax(score / "
                f"{rp['temperature']}), re-retrieved every {rp['stride']} tokens"
                + _against_gpt(rp, gpt) + f", at {fmt(rp['forwards_per_token'], 3)} GPT forwards per token.", '']
    rs = metrics.get('wt2_test_rag_sequence')
    if rs:
        out += [f"RAG-Sequence (Lewis et al. 2020; docs/rag-sequence.md): this GPT unchanged, run once per top-{rs['k']} passage "
                f"on each {rs['span']}-token sequence, the sequence probabilities mixed by the retrieval weights"
                + _against_gpt(rs, gpt) + '.', '']
    fl = metrics.get('wt2_test_flare')
    if fl:
        out += [f"FLARE (Jiang et al. 2023; docs/flare.md): this GPT unchanged, looking {fl['lookahead']} tokens ahead and "
                f"retrieving (with the unsure tokens masked out of the query) only when a look-ahead token's probability is "
                f"below θ = {fl['threshold']}: {fmt(fl['retrievals_per_100_tokens'], 1)} retrievals per 100 tokens"
                + _against_gpt(fl, gpt).replace(':', ',', 1) + '.', '']
    return out

READING_LABELS = {
    'copy_test': 'copy test', 'copy_test_knnlm': 'copy test, kNN-LM over this GPT',
    'copy_test_icralm': 'copy test, In-Context RALM over this GPT',
    'squad_cloze': 'SQuAD cloze', 'squad_cloze_knnlm': 'SQuAD cloze, kNN-LM over this GPT',
    'squad_cloze_icralm': 'SQuAD cloze, In-Context RALM over this GPT',
}


def fmt(x, digits=2):
    return f'{x:,.{digits}f}' if isinstance(x, (int, float)) else str(x)


def card(m: dict, baseline: dict | None = None) -> str:
    hp = m['hyperparameters']
    t = m.get('training', {})
    retro = m['architecture'] == 'retro'
    lines = [f"# {m['name']} — model card", '',
             f"RetroLab's {'RETRO' if retro else 'GPT baseline'}: a small decoder trained from scratch on "
             'WikiText-2 for teaching what retrieval does to a language model. It runs in the browser with '
             'onnxruntime-web (int8 weights).', '',
             '## Architecture', '',
             f"- {m['parameters']:,} parameters; GPT-2-style decoder: {hp['n_layer']} layers, d_model {hp['d_model']}, "
             f"{hp['n_head']} heads, context {hp['context']}, learned positions, pre-LayerNorm, GELU, tied embeddings.",
             f"- Tokenizer: byte-level BPE, {m['tokenizer']['vocab_size']:,} entries, trained on WikiText-2 train "
             "with the Hugging Face `tokenizers` library; `<unk>` is one special token."]
    if retro:
        lines += [
            f"- RETRO: + a {hp['encoder_layers']}-layer bidirectional neighbour encoder and chunked cross-attention in "
            f"decoder layers {hp['cca_layers']} (0-based). Chunk {hp['chunk']} tokens, k = {hp['neighbours']} "
            f"neighbours of {hp['neighbour_len']} tokens (retrieved chunk + its continuation).",
            '- Causal alignment as in Megatron-LM: the queries of chunk u start at the last token of chunk u and '
            'attend to chunk u\'s neighbours; tokens before the first chunk completes see no retrieval. A learned '
            'relative position bias (query offset in its chunk x neighbour token position) lets the model find '
            '"the token after the aligned one" in a neighbour.',
            (f"- Retrieval: token-aligned (docs/retro-training.md). The query for chunk u is the kNN-LM key of "
             f"the shipped GPT `{m['retrieval']['query_model']}` (the input of its last feed-forward block after "
             "LayerNorm) at the chunk's last token; the datastore holds that GPT's key for every token of its "
             "text (the kNN-LM datastore: PCA to 64 dims, int8, exact search); a match at position p gives the "
             f"{hp['chunk']} tokens ending at p followed by the {hp['chunk']} tokens after p, so the continuation "
             "starts where the matched context went on. The frozen GPT is the retriever, as frozen BERT is in "
             "the RETRO paper. What such neighbours hold: for 2,000 WikiText-2 valid chunk ends searched in "
             "train, one of the 2 neighbours continues with the true next token 25.3% of the time (chunk "
             "retrieval with a mean token embedding, the first design: 2.8%; random positions: 2.0%; "
             "`python3 -m studies.aligned_study`); RETRO with chunk retrieval gained 0.3% over the GPT "
             "(docs/retro-training.md)."
             if m.get('retrieval', {}).get('kind') == 'token-aligned' else
             f"- Retrieval embedder (`{m['embedder']['id']}`): the L2-normalised mean over the chunk of the base GPT's "
             'token embeddings, centred on their frequency-weighted mean and weighted by IDF (int8, frozen; '
             'chosen over the plain mean by `python3 -m studies.embedder_study`), exact cosine search.')]
    lines += ['', '## Training data', '',
              '- WikiText-2 train (Merity et al. 2016, "Pointer Sentinel Mixture Models"), CC BY-SA 3.0. '
              'The weights are derived from it and are shared under the same license.',
              '- SQuAD 2.0 paragraphs are NOT in the training data: they are the factual datastore whose facts the '
              'models must not already know.', '']
    if t:
        frozen = retro and t.get('recipe', {}).get('decoder_frozen', False)
        # A RETRO continued in phases keeps each phase's record in 'base', down to the first RETRO-fit.
        phases = [t]
        while retro and phases[-1].get('base', {}).get('stage') == 'retro':
            phases.append(phases[-1]['base'])
        first_fit = phases[-1]
        # A frozen-decoder RETRO's base is the finished GPT continuation, whose own base is the base GPT.
        continuation = first_fit.get('base', {}) if frozen else t
        base = continuation.get('base', {})
        lines += ['## Training', '',
                  f"- Base GPT: {fmt(base.get('tokens', 0), 0)} tokens ({base.get('steps', '?')} steps of "
                  f"{base.get('batch', '?')} x {base.get('context', '?')}), AdamW, lr {base.get('lr', '?')}, "
                  f"{base.get('schedule', '')}, {base.get('precision', '')}, {fmt(base.get('wall_seconds', 0) / 60, 0)} min "
                  'on one CPU core.' + (f" ({base['note']})" if base.get('note') else ''),
                  f"- GPT continuation: {fmt(continuation.get('tokens', 0), 0)} more tokens ({continuation.get('steps')} "
                  f"steps, lr {continuation.get('lr')}, {fmt(continuation.get('wall_seconds', 0) / 60, 0)} min on one core). "
                  f"Total: {fmt(continuation.get('total_tokens', 0), 0)} tokens."
                  + (' This is the shipped GPT; RETRO\'s decoder is this GPT, unchanged.' if not retro else '')]
        if frozen:
            lines.append(f"- RETRO-fit: the decoder is that GPT, frozen (its weights are bit-identical to the GPT's; "
                         f"a test checks it). Only the neighbour encoder and the cross-attention train, on the GPT "
                         f"continuation's {fmt(first_fit.get('tokens', 0), 0)} tokens again, the same batches in the same order "
                         f"({first_fit.get('steps')} steps, {fmt(first_fit.get('wall_seconds', 0) / 60, 0)} min on {first_fit.get('threads', 1)} CPU thread(s)). RETRO saw no "
                         'training token the GPT did not; the extra compute is one pass for the retrieval parameters.')
            for n, phase in enumerate(reversed(phases[:-1]), start=2):
                r = phase.get('recipe', {})
                wall = phase.get('wall_seconds')
                lines.append(f"- RETRO-fit phase {n}: {r.get('change', '')}; {fmt(phase.get('tokens', 0), 0)} tokens "
                             f"({phase.get('steps')} steps of a {phase.get('schedule_steps', phase.get('steps'))}-step schedule, "
                             f"seed {phase.get('seed')}), own-document neighbours {r.get('oracle_share_start', 0):.0%} → "
                             f"{r.get('oracle_share_end', 0):.0%}"
                             + (f", {fmt(wall / 60, 0)} min on one core" if wall else '') + '; the decoder still frozen.')
        elif retro:
            lines.append('- RETRO: the same continuation (same batches in the same order), its decoder trained on the '
                         'same schedule.')
        if retro and 'recipe' in first_fit:
            r = first_fit['recipe']
            phase1 = 'Phase 1 ' if len(phases) > 1 else ''
            lines += [f"- {phase1}{'recipe' if phase1 else 'Recipe'}: {r['method']}.",
                      f"- {phase1}{'oracle' if phase1 else 'Oracle'} neighbours: in {r['oracle_share_start']:.0%} of chunks at the start, tapering to "
                      f"{r['oracle_share_end']:.0%} at the end: {r['oracle_definition']}; "
                      f"{r['oracle_shifted_share']:.0%} of those were shifted. All other neighbours: "
                      f"{r['real_neighbours']}."]
            if 'cca_initialisation' in r:
                lines.append(f"- {phase1}{'cross-attention' if phase1 else 'Cross-attention'}: {r['cca_initialisation']}.")
        lines.append('')
    metrics = m.get('metrics', {})
    lines += ['## Perplexity (measured on the shipped int8 ONNX files by `npm run eval`)', '']
    full = [(key, label) for key, label in METRIC_LABELS.items() if key in metrics and 'word_ppl' in metrics[key]]
    if metrics:
        if full:
            lines += ['| setting | token-level | word-level |', '|---|---|---|']
        for key, label in full:
            lines.append(f"| {label} | {fmt(metrics[key]['token_ppl'])} | {fmt(metrics[key]['word_ppl'])} |")
        lines += ['', 'Word-level perplexity divides the total negative log-likelihood by the 245,569 WikiText words of '
                  'the test split (whitespace tokens plus one per line). For comparison: Pointer Sentinel-LSTM 80.8, '
                  'AWD-LSTM 65.8 (word-level, test). Protocol: docs/manifest.md.', '']
        subset = {k: v for k, v in metrics.items() if k.startswith('wt2_test_first')}
        if subset:
            first = next(iter(subset.values()))
            lines += [f"WikiText-2 test, {first.get('subset', 'a subset')}: token-level only (word-level perplexity "
                      'is reported for full runs only).', '', '| setting | token-level | scored tokens |', '|---|---|---|']
            for key, value in subset.items():
                label = {'': 'neighbours from the train datastore' if retro else 'this model',
                         '_random_neighbours': 'random neighbours', '_leakage': 'test articles in the datastore (leakage)'}
                lines.append(f"| {label.get(key.split('first', 1)[1].lstrip('0123456789'), key)} | {fmt(value['token_ppl'])} | "
                             f"{fmt(value.get('scored_tokens', 0), 0)} |")
            lines.append('')
        if 'wt2_test_knnlm' in metrics:
            k = metrics['wt2_test_knnlm']
            ds = k.get('datastore', {})
            lines += [f"kNN-LM (Khandelwal et al. 2020; docs/knnlm.md): this GPT unchanged, its next-token distribution "
                      f"mixed with one from the {fmt(k['k'], 0)} nearest of {fmt(ds.get('entries', 0), 0)} `knn_key` entries of "
                      f"{ds.get('name', 'the datastore')} ({ds.get('dim', '?')}-d {ds.get('encoding', '')} keys), "
                      f"λ = {k['lambda']}, T = {k['temperature']} (tuned on WikiText-2 valid)."
                      + (f" Against the GPT alone: {1 - k['token_ppl'] / metrics['wt2_test']['token_ppl']:.1%} lower "
                         'token-level perplexity.' if 'wt2_test' in metrics else ''), '']
        if 'wt2_test_icralm' in metrics:
            c = metrics['wt2_test_icralm']
            ds = c.get('datastore', {})
            ds_name = ds.get('name', 'the datastore') if isinstance(ds, dict) else str(ds)
            lines += [f"In-Context RALM (Ram et al. 2023): this GPT unchanged, the top chunk of {ds_name} "
                      f"(retrieved by the last {c.get('query_length', '?')} tokens) placed before the context, "
                      f"re-retrieved every {c.get('stride', '?')} tokens"
                      + (f": {abs(c['token_ppl'] / metrics['wt2_test']['token_ppl'] - 1):.1%} "
                         f"{'lower' if c['token_ppl'] < metrics['wt2_test']['token_ppl'] else 'higher'} token-level perplexity "
                         'than the GPT alone (docs/icralm.md)' if 'wt2_test' in metrics else '') + '.', '']
        lines += family_paragraphs(metrics)
        if retro and baseline and 'wt2_test' in metrics and 'wt2_test' in baseline.get('metrics', {}):
            ours, theirs = metrics['wt2_test']['token_ppl'], baseline['metrics']['wt2_test']['token_ppl']
            verdict = 'better' if ours < theirs else 'worse'
            lines += [f"Against the GPT it was built on ({baseline['id']}, test token-level "
                      f"{fmt(theirs)}), RETRO with neighbours from the train datastore is {abs(ours / theirs - 1):.1%} "
                      f"{verdict}.", '']
    else:
        lines += ['Not measured yet.', '']
    reading = [(key, label) for key, label in READING_LABELS.items() if key in metrics]
    if reading:
        lines += ['## Reading tests (measured through the app\'s columns by `npm run eval:generate`, bare greedy)', '',
                  'Copy test: SQuAD 2.0 passages no model trained on are the datastore; a prompt is a passage up to a '
                  'seeded cut; a hit is the next 4 stored tokens written first. SQuAD cloze: the answer\'s sentence in '
                  'its gold paragraph cut before the answer, closed-book, the built-in SQuAD paragraphs as the '
                  'datastore; a hit is the normalised answer in the first 12 tokens. Intervals: Wilson 95%.', '',
                  '| test | hits | rate | 95% interval |', '|---|---|---|---|']
        for key, label in reading:
            r = metrics[key]
            lines.append(f"| {label} | {r['hits']} of {r['n']} | {r['rate']:.1%} | {r['ci95'][0]:.1%}–{r['ci95'][1]:.1%} |")
        lines.append('')
    q = m['quantization']
    lines += ['## Quantization', '',
              f"- {q['method']}: every 2-D weight as int8 with one scale per output channel (DequantizeLinear); "
              f"max |logit difference| to the fp32 reference on the parity input: {fmt(q.get('fp32_reference_max_abs_logit_diff', 0), 4)}."]
    decoder = m['onnx']['decoder']
    if m['architecture'] == 'gpt' and any(t['name'].startswith('past_key_values.') for t in decoder['inputs']):
        earlier = ', '.join(sha[:12] + '…' for sha in decoder.get('same_keys_as', []))
        lines += ['- Graph: the KV cache as one tensor per layer in the Hugging Face names (`past_key_values.{i}.key/value` → '
                  '`present.{i}.key/value`) and one onnxruntime MultiHeadAttention per layer, so the decoder also loads in '
                  'transformers.js (`config.json` beside it; docs/manifest.md).'
                  + (f' Same weights and the same `knn_key` as the earlier graph {earlier}, whose cache was one stacked tensor.' if earlier else '')]
    if m['architecture'] == 'retro' and any(t['name'].startswith('past_key_values.') for t in decoder['inputs']):
        lines += ['- Decoder graph: the self-attention KV cache as one tensor per layer (`past_key_values.{i}.key/value` → '
                  '`present.{i}.key/value`, after `input_ids`, `cca_key`, `cca_value`, `chunk_start`, `previous_ids`) and one '
                  'onnxruntime MultiHeadAttention per layer, as in the GPT; the chunked cross-attention is as traced '
                  '(docs/manifest.md).']
    lines += ['', '## Reproduce', '', '```', 'bash models/pipeline.sh', '```',
              'from a checkout with `../shared/data` beside it (about 2 hours on 2 CPU cores). '
              'Each step is cached under models/.work.', '',
              '## Limitations', '',
              '- A 7-9M-parameter model trained on 2M words: fluent only in Wikipedia style, often wrong on facts.',
              '- Made for teaching and demonstration, not for any decision.']
    return '\n'.join(lines) + '\n'


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--public', required=True)
    args = p.parse_args()
    with open(os.path.join(args.public, 'index.json')) as f:
        ids = json.load(f)['models']
    for model_id in ids:
        with open(os.path.join(args.public, model_id, 'manifest.json')) as f:
            m = json.load(f)
        baseline = None
        if m['architecture'] == 'retro' and 'gpt-wt2' in ids:
            with open(os.path.join(args.public, 'gpt-wt2', 'manifest.json')) as f:
                baseline = json.load(f)
        with open(os.path.join(args.public, model_id, 'MODEL_CARD.md'), 'w') as f:
            f.write(card(m, baseline))
        print(f'wrote {model_id}/MODEL_CARD.md')


if __name__ == '__main__':
    main()
