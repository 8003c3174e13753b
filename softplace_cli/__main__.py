from softplace_cli import main

main()
