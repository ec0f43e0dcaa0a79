"""Bringing a dataset's data in from the workspace: uploaded files checked before they are kept
(`files`), a preview with a proposed mapping to the dataset's table schema (`preview`), the
mapping written as a pipeline definition (`mapping`), and runs of it with their validation
reports (`runs`). The pages in hub/web/workspace/daten.py are thin routes over these."""
