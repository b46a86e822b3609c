from cosmigrate.cli import main

main()
