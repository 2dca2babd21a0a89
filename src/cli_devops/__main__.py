from cli_devops.cli import main

main()
