from scale_lth.cli import console

console()
