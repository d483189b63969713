from visma_tableau_pipeline.sandbox.visma.serve import main

main()
