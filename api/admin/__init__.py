"""The admin API of informaticists: policy versions (validate, store, diff, activate) and silences, all audited."""
