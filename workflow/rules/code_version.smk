# Included after every stage: each rule that runs a workflow script gets `params.code`, a digest of
# that script's content and of the `ecem` code it runs (its entry functions' modules, followed
# through imports; ecem.provenance). Editing package code therefore reruns exactly the jobs that
# run it (params trigger), while a fresh clone or a `git checkout`, which only changes file times,
# reruns nothing.
for _rule in workflow.rules:
    if _rule.script is not None:
        _rule.set_params(code=code_version(Path(_rule.snakefile).parent / _rule.script))
