import torch

from toyformer.data.batches import IGNORE, causal_prompt, format_batch, with_eos
from toyformer.models.attention import self_attention_mask
from toyformer.tasks import BOS, EOS, PAD, SEP, Examples

# two rows of different lengths: "5 6 7" -> "7 6 5" and "8" -> "8 8"
EX = Examples(torch.tensor([[5, 6, 7], [8, 0, 0]]), torch.tensor([[7, 6, 5], [8, 8, 0]]))


def test_with_eos_appends_only_where_missing():
    out, n = with_eos(torch.tensor([[5, 2, 0], [5, 6, 0]]))
    assert out.tolist() == [[5, 2, 0, 0], [5, 6, 2, 0]] and n.tolist() == [2, 3]


def test_causal_prompt_is_left_padded_and_ends_with_sep():
    assert causal_prompt(EX.input).tolist() == [[5, 6, 7, SEP], [PAD, PAD, 8, SEP]]
    assert causal_prompt(EX.input, sep=False).tolist() == [[5, 6, 7], [PAD, PAD, 8]]


def test_causal_batch_puts_loss_on_the_answer_only():
    b = format_batch(EX, "causal")
    assert b.inputs.tolist() == [[5, 6, 7, SEP, 7, 6, 5], [PAD, PAD, 8, SEP, 8, 8, EOS]]
    i = IGNORE
    assert b.labels.tolist() == [[i, i, i, 7, 6, 5, EOS], [i, i, i, 8, 8, EOS, i]]


def test_seq2seq_batch_shifts_the_target_behind_bos():
    b = format_batch(EX, "seq2seq")
    assert b.decoder_inputs.tolist() == [[BOS, 7, 6, 5], [BOS, 8, 8, PAD]]
    assert b.labels.tolist() == [[7, 6, 5, EOS], [8, 8, EOS, IGNORE]]


def test_tagger_ignores_padding():
    b = format_batch(EX, "tagger")
    assert b.labels.tolist() == [[7, 6, 5], [8, 8, IGNORE]]


def test_masks_hide_padding_and_the_future_but_never_a_whole_row():
    m = self_attention_mask(torch.tensor([[False, True, True]]), causal=True)[0, 0]
    assert m.tolist() == [[True, False, False], [False, True, False], [False, True, True]]
    assert m.any(-1).all()


def test_masked_batch_at_evaluation_masks_exactly_the_target():
    from toyformer.tasks import UNK

    b = format_batch(EX, "masked")
    assert b.inputs.tolist() == [[5, 6, 7, UNK, UNK, UNK], [8, UNK, UNK, PAD, PAD, PAD]]
    i = IGNORE
    assert b.labels.tolist() == [[i, i, i, 7, 6, 5], [i, 8, 8, i, i, i]]


def test_masked_batch_in_training_masks_random_real_tokens():
    from toyformer.tasks import UNK

    g = torch.Generator().manual_seed(0)
    b = format_batch(Examples(EX.input.repeat(200, 1), EX.target.repeat(200, 1)), "masked", mask_prob=0.3, generator=g)
    masked = b.inputs == UNK
    assert torch.equal(masked, b.labels != IGNORE)
    assert not (masked & (b.labels == PAD)).any()
    assert 0.25 < masked.float().sum() / (b.labels.numel() - (b.inputs == PAD).sum()) < 0.35


def test_one_token_answers_get_no_eos():
    ex = Examples(torch.tensor([[5, 6], [7, 8]]), torch.tensor([[9], [10]]))
    b = format_batch(ex, "causal", sep=False)
    assert b.inputs.tolist() == [[5, 6], [7, 8]] and b.labels.tolist() == [[IGNORE, 9], [IGNORE, 10]]


def test_prompt_loss_is_plain_language_modelling():
    b = format_batch(EX, "causal", prompt_loss=True)
    i = IGNORE
    assert b.labels.tolist() == [[6, 7, SEP, 7, 6, 5, EOS], [i, i, SEP, 8, 8, EOS, i]]
