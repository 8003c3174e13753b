from softplace.cli import main

main()
