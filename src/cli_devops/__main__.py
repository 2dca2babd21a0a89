from cli_devops.launch import main

main()
