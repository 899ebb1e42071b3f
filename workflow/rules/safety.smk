# Included last: the data-safety rule (ecem.sources) checked over every rule this config defines.
# A rule may write only under results/ and resources/{demo,models,downloads}/, and never a path
# that the config names as the user's input; otherwise the run stops before anything executes.
SAFETY_PROBLEMS = sources.check_rule_outputs(
    [
        (r.name, str(f))
        for r in workflow.rules
        for f in [*r.output, *r.log, *([r.benchmark] if r.benchmark else [])]
    ],
    config,
)
if SAFETY_PROBLEMS:
    raise WorkflowError(f"Unsafe workflow: {SAFETY_PROBLEMS[0]}")
