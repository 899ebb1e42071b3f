# Included after every stage: each rule that runs a workflow script gets `params.code`, a digest of
# the content of the `ecem` modules that script imports, transitively (ecem.provenance). Editing
# package code therefore reruns exactly the jobs that run it (params trigger), while a fresh clone
# or a `git checkout`, which only changes file times, reruns nothing.
for _rule in workflow.rules:
    if _rule.script is not None:
        _rule.set_params(code=code_version(Path(_rule.snakefile).parent / _rule.script))
