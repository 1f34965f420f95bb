from mlops_pulumi.main import main

main()
