"""Terraform: which binary, running it (a process group under a guard, logs per step),
what went wrong, main.tf.json and its values, the plan summary and the apply's progress."""
