"""Reading what runs left on disk: lm-eval results and samples files, univar-eval run folders, external answer
files (JSONL, UniVaR's CSV), each turned into value distributions. The one home of run reading."""
