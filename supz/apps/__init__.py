"""Application directories: program.ini and sup_run.sh, the conventions they share, releases and deploys."""
