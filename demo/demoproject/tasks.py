import time

from celery import shared_task


@shared_task(bind=True)
def count_words(self, text: str) -> int:
    """Counts slowly, reporting progress as it goes."""
    words = text.split()
    for done in range(1, len(words) + 1):
        self.update_state(state="PROGRESS", meta={"done": done, "total": len(words)})
        time.sleep(0.15)
    return len(words)


@shared_task
def square(number: int) -> int:
    time.sleep(0.1)
    return number * number


@shared_task
def total(numbers: list[int]) -> int:
    return sum(numbers)
