"""`talkface studio`: a local web page for the whole workflow (app.py), over jobs that run the CLI (jobs.py)."""
