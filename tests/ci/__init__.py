"""An emulation of the CI runners our generators target (Cloud Build, GitHub Actions): each
step runs the way its runner starts it, with only the programs its image provides."""
