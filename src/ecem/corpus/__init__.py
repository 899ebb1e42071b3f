"""The offline demo corpus (MELD.Raw layout, ECEM annotations) built from shipped assets."""
