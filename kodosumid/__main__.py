from kodosumid.cli import main

main()
