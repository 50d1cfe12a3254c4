"""`kubectl openconnectors`: a kubectl plugin to see and steer ConnectorInstances and their accounts.

It talks only to the Kubernetes API (with the kubeconfig's credentials, through the `kubernetes`
package) and never to the platform. Only `plan` reads Secret values: those of the file's Secrets
and their stored copies, compared in memory, never shown (plan.py). It imports nothing of the
operator (an import-linter contract): the names it shares with it are repeated in `names.py`.
"""
