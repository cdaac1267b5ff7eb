"""Human in the loop with CrewAI: a task reviewed by a human, and a flow gated on approval.

- `review_crew` (entrypoint `flows.review:review_crew`): a writer drafts a brief in a task
  with `human_input=True`; the execution then waits for feedback on the draft. A non-empty
  reply has the writer revise the draft and is asked again; an empty reply accepts it.
- `ApprovalFlow` (entrypoint `flows.review:ApprovalFlow`): a CrewAI Flow whose first step
  is decorated with `@human_feedback`; the reviewer's reply is classified as `approved` or
  `rejected` and the flow continues with `publish` or `shelve`.

Both ask through kodosumi (`ctx.request_input`), so the question appears as an input
request of the execution, answered with `ProvideInput`.
"""

from __future__ import annotations

from crewai import Agent, Crew, Task
from crewai.flow.flow import Flow, listen, start
from crewai.flow.human_feedback import human_feedback
from pydantic import BaseModel

from engine.crew import crew_factory
from flows.tools import example_llm


@crew_factory
def review_crew() -> Crew:
    writer = Agent(
        role="Writer",
        goal="Write a short brief about {topic} that the reviewer accepts",
        backstory="You take feedback seriously and revise until the reviewer is happy.",
        llm=example_llm(),
    )
    draft = Task(
        name="draft",
        description="Draft a brief about {topic}.",
        expected_output="A short markdown brief.",
        agent=writer,
        human_input=True,
    )
    return Crew(agents=[writer], tasks=[draft])


class PlanState(BaseModel):
    topic: str = "kodosumi"
    plan: str = ""
    decision: str = ""


class ApprovalFlow(Flow[PlanState]):
    """Draft a rollout plan, ask for approval, then publish or shelve it."""

    @start()
    @human_feedback(
        message="Approve this rollout plan? Reply 'approved' or 'rejected' (with reasons).",
        emit=["approved", "rejected"],
        llm=example_llm(),
        default_outcome="approved",
    )
    def draft(self) -> str:
        plan = (
            f"Rollout plan for {self.state.topic}: 1. pilot with one team, "
            "2. measure for two weeks, 3. roll out to everyone."
        )
        self.state.plan = plan
        return plan

    @listen("approved")
    def publish(self) -> str:
        self.state.decision = "approved"
        return f"Published: {self.state.plan}"

    @listen("rejected")
    def shelve(self) -> str:
        self.state.decision = "rejected"
        feedback = self.last_human_feedback.feedback if self.last_human_feedback else ""
        return f"Shelved: {self.state.plan} (reviewer: {feedback})"
