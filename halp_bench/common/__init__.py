"""Small neutral helpers every layer may use (atomic files, progress bars, the CPU share); they
import nothing else from halp_bench but its errors."""
