"""Smoke's barely trained Pocket model ends its speech after 0.9 s at the package's end-of-speech threshold; the
profile's ``sample_eos_threshold`` (a documented ``TTSModel.load_model`` setting) lets it run to the package's length
for the text, so 07's samples and its speak command give at least a second to listen to. Random weights: mechanics."""

from nbhelpers.profiles import load_profile


def test_smoke_threshold_gives_at_least_a_second_where_the_default_stops_early(pocket_corpus, small_cfg):
    from nbhelpers.pocket.model import load_finetuned, synthesize
    from nbhelpers.pocket.stage import prepare
    from nbhelpers.pocket.train import PACKAGE_CHECKPOINT, train

    cfg = small_cfg(max_steps=2)
    prep = prepare(cfg, dataset=str(pocket_corpus), run="eos")
    result = train(cfg, prep.tts_model, prep.train_items, paths=prep.paths)
    texts, voice = ["ಕನ್ನಡ ಸುಂದರ ಭಾಷೆ.", "ರೈಲು ಬಂತು."], pocket_corpus / "wavs" / "u8.wav"

    def seconds(eos_threshold: float | None) -> list[float]:
        model = load_finetuned(prep.config_path, result.checkpoint / PACKAGE_CHECKPOINT, temp=0.3,
                               eos_threshold=eos_threshold)
        return [len(a) / model.sample_rate for a in synthesize(model, texts, voice, seed=0)]

    assert min(seconds(None)) < 1.0  # the package's threshold: what the setting is for
    assert min(seconds(float(cfg["sample_eos_threshold"]))) >= 1.0
    assert load_profile("pocket", "kaggle-t4")["sample_eos_threshold"] == -4.0  # released models keep theirs
