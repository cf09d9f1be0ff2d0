"""MC Hub's web front end (Streamlit): create, watch, approve, list, modify and destroy clusters.

It starts runs through Prefect's deployments (mchub.orchestration.runs) and reads cluster folders; it
never runs Terraform or changes the cloud itself. Start it with `streamlit run ui/app.py`.
"""
