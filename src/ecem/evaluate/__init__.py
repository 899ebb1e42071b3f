"""The scoring and reporting end of the pipeline: metrics with bootstrap CIs, baselines, tables,
the HTML report and human-evaluation sheets. Everything here needs only predictions
(`sample_id, prediction, reference`) plus whatever stage artifacts happen to exist."""
